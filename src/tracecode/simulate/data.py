"""Static tables of the simulated world: regions, drugs, names, chains, suppliers.

Region codes are real 6-digit administrative codes (GB/T 2260). Drug names, ATC groups,
pack sizes and prices are close to what Guangdong pharmacies sold in 2025; the national
codes (med_list_codg) and trace prefixes are made up in the NHSA shape.
"""

from __future__ import annotations

from typing import NamedTuple


class Region(NamedTuple):
    admdvs: str
    name: str
    weight: float  # share of institutions and people within its scale


# Guangdong districts, then a few elsewhere for cross-province cases (Nanning,
# Changsha, Ulanqab: the Ulanqab reflux case crossed a province border).
REGIONS: tuple[Region, ...] = (
    Region("440103", "广州市荔湾区", 3.0),
    Region("440104", "广州市越秀区", 3.5),
    Region("440105", "广州市海珠区", 4.0),
    Region("440106", "广州市天河区", 5.0),
    Region("440111", "广州市白云区", 5.0),
    Region("440112", "广州市黄埔区", 2.5),
    Region("440113", "广州市番禺区", 4.5),
    Region("440114", "广州市花都区", 2.5),
    Region("440115", "广州市南沙区", 1.5),
    Region("440303", "深圳市罗湖区", 2.5),
    Region("440304", "深圳市福田区", 3.5),
    Region("440305", "深圳市南山区", 3.5),
    Region("440306", "深圳市宝安区", 5.0),
    Region("440307", "深圳市龙岗区", 5.0),
    Region("440309", "深圳市龙华区", 3.0),
    Region("440604", "佛山市禅城区", 2.0),
    Region("440605", "佛山市南海区", 3.5),
    Region("440606", "佛山市顺德区", 3.5),
    Region("441900", "东莞市", 8.0),
    Region("442000", "中山市", 3.5),
    Region("440402", "珠海市香洲区", 2.0),
    Region("440703", "江门市蓬江区", 1.5),
    Region("440507", "汕头市龙湖区", 1.5),
    Region("441302", "惠州市惠城区", 2.0),
    Region("440802", "湛江市赤坎区", 1.5),
    Region("441202", "肇庆市端州区", 1.0),
    Region("445102", "潮州市湘桥区", 0.8),
    Region("450103", "南宁市青秀区", 0.8),
    Region("430104", "长沙市岳麓区", 0.8),
    Region("150902", "乌兰察布市集宁区", 0.6),
)

SCALE_REGIONS: dict[str, tuple[str, ...]] = {
    # a handful of districts, but two provinces more and four Guangdong cities
    "demo": ("440106", "440104", "440105", "440304", "440305", "440606", "441900",
             "450103", "150902"),
    # Guangzhou, with neighbours enough for travel and cross-province cases
    "city": ("440103", "440104", "440105", "440106", "440111", "440112", "440113",
             "440114", "440115", "440304", "440606", "450103", "430104", "150902"),
}


class Drug(NamedTuple):
    name: str
    spec: str
    atc: str  # 5-character ATC group, or a TCM group for Z codes
    tcm: bool  # 中成药 (Z code) rather than 西药 (X code)
    kind: str  # chronic | acute | expensive | hospital
    pack_units: int
    pack_price: float
    split_dose: int  # units per split (拆零) dispense in clinics; 0: never split
    gender: str  # "" | "F" | "M"
    min_age: int | None
    max_age: int | None
    weight: float  # popularity within its kind
    manufacturer: str


DRUGS: tuple[Drug, ...] = (
    Drug("阿托伐他汀钙片", "20mg×7片", "C10AA", False, "chronic", 7, 17.50, 0, "", None,
         None, 9, "北京嘉林药业股份有限公司"),
    Drug("苯磺酸氨氯地平片", "5mg×28片", "C08CA", False, "chronic", 28, 29.40, 7, "", None,
         None, 9, "辉瑞制药有限公司"),
    Drug("盐酸二甲双胍缓释片", "0.5g×30片", "A10BA", False, "chronic", 30, 22.50, 10, "", 10,
         None, 8, "中美上海施贵宝制药有限公司"),
    Drug("缬沙坦胶囊", "80mg×28粒", "C09CA", False, "chronic", 28, 32.20, 7, "", 18, None, 6,
         "北京诺华制药有限公司"),
    Drug("硝苯地平控释片", "30mg×12片", "C08CA", False, "chronic", 12, 33.60, 0, "", 18, None,
         6, "拜耳医药保健有限公司"),
    Drug("阿司匹林肠溶片", "100mg×30片", "B01AC", False, "chronic", 30, 15.90, 10, "", 16, None,
         7, "拜耳医药保健有限公司"),
    Drug("硫酸氢氯吡格雷片", "75mg×7片", "B01AC", False, "chronic", 7, 20.30, 0, "", 18, None,
         5, "赛诺菲(杭州)制药有限公司"),
    Drug("瑞舒伐他汀钙片", "10mg×28片", "C10AA", False, "chronic", 28, 38.92, 7, "", 18, None,
         5, "阿斯利康制药有限公司"),
    Drug("厄贝沙坦片", "150mg×14片", "C09CA", False, "chronic", 14, 26.60, 7, "", 18, None, 4,
         "赛诺菲(杭州)制药有限公司"),
    Drug("甘精胰岛素注射液", "3ml:300单位×1支", "A10AE", False, "chronic", 1, 75.80, 0, "",
         None, None, 3, "甘李药业股份有限公司"),
    Drug("门冬胰岛素注射液", "3ml:300单位×1支", "A10AB", False, "chronic", 1, 42.60, 0, "",
         2, None, 2, "诺和诺德(中国)制药有限公司"),
    Drug("恩替卡韦分散片", "0.5mg×28片", "J05AF", False, "chronic", 28, 18.20, 7, "", 16, None,
         3, "正大天晴药业集团股份有限公司"),
    Drug("复方阿胶浆", "20ml×12支", "A09BA", True, "chronic", 12, 98.00, 0, "", None, None, 3,
         "东阿阿胶股份有限公司"),
    Drug("沙美特罗替卡松吸入粉雾剂", "50μg/250μg×60吸", "R03AK", False, "chronic", 1, 198.00,
         0, "", 12, None, 2, "葛兰素史克(中国)投资有限公司"),
    Drug("左甲状腺素钠片", "50μg×100片", "H03AA", False, "chronic", 100, 29.30, 28, "", None,
         None, 3, "默克雪兰诺有限公司"),
    Drug("磷酸西格列汀片", "100mg×14片", "A10BH", False, "chronic", 14, 58.60, 7, "", 18, None,
         3, "默沙东(中国)有限公司"),
    Drug("达格列净片", "10mg×14片", "A10BK", False, "chronic", 14, 61.60, 7, "", 18, None, 3,
         "阿斯利康制药有限公司"),
    Drug("沙库巴曲缬沙坦钠片", "100mg×14片", "C09DX", False, "chronic", 14, 69.00, 7, "", 18,
         None, 2, "北京诺华制药有限公司"),
    Drug("利伐沙班片", "10mg×10片", "B01AF", False, "chronic", 10, 39.00, 0, "", 18, None, 2,
         "拜耳医药保健有限公司"),
    Drug("富马酸替诺福韦二吡呋酯片", "300mg×30片", "J05AF", False, "chronic", 30, 12.60, 10, "",
         12, None, 2, "成都倍特药业股份有限公司"),
    Drug("硫酸羟氯喹片", "0.1g×14片", "P01BA", False, "chronic", 14, 48.30, 7, "", 6, None, 1,
         "上海上药中西制药有限公司"),
    Drug("司美格鲁肽注射液", "1.34mg/ml×1.5ml×1支", "A10BJ", False, "expensive", 1, 698.00, 0,
         "", 18, None, 3, "诺和诺德(中国)制药有限公司"),
    Drug("利拉鲁肽注射液", "3ml:18mg×1支", "A10BJ", False, "expensive", 1, 398.00, 0, "", 18,
         None, 2, "诺和诺德(中国)制药有限公司"),
    Drug("阿达木单抗注射液", "40mg/0.8ml×1支", "L04AB", False, "expensive", 1, 1150.00, 0, "",
         None, None, 1, "艾伯维医药贸易(上海)有限公司"),
    Drug("甲磺酸奥希替尼片", "80mg×30片", "L01EB", False, "expensive", 30, 4950.00, 0, "", 18,
         None, 1, "阿斯利康制药有限公司"),
    Drug("人血白蛋白", "10g(20%,50ml)×1瓶", "B05AA", False, "hospital", 1, 428.00, 0, "",
         None, None, 2, "华兰生物工程股份有限公司"),
    Drug("注射用头孢曲松钠", "1.0g×10瓶", "J01DD", False, "hospital", 10, 36.00, 1, "", None,
         None, 4, "上海罗氏制药有限公司"),
    Drug("阿莫西林胶囊", "0.25g×24粒", "J01CA", False, "acute", 24, 9.60, 6, "", None, None,
         9, "珠海联邦制药股份有限公司"),
    Drug("头孢克肟分散片", "0.1g×6片", "J01DD", False, "acute", 6, 19.80, 2, "", None, None, 6,
         "广州白云山制药股份有限公司"),
    Drug("布洛芬缓释胶囊", "0.3g×20粒", "M01AE", False, "acute", 20, 15.80, 4, "", 12, None, 9,
         "中美天津史克制药有限公司"),
    Drug("小儿氨酚黄那敏颗粒", "10袋", "R05XA", False, "acute", 10, 12.50, 0, "", None, 12, 5,
         "广州白云山医药集团股份有限公司"),
    Drug("蒙脱石散", "3g×10袋", "A07BC", False, "acute", 10, 15.60, 3, "", None, None, 5,
         "博福-益普生(天津)制药有限公司"),
    Drug("奥美拉唑肠溶胶囊", "20mg×14粒", "A02BC", False, "acute", 14, 16.80, 7, "", 18, None,
         7, "常州四药制药有限公司"),
    Drug("黄体酮胶囊", "100mg×30粒", "G03DA", False, "acute", 30, 58.00, 10, "F", 18, 55, 3,
         "浙江医药股份有限公司新昌制药厂"),
    Drug("戊酸雌二醇片", "1mg×21片", "G03CA", False, "acute", 21, 44.90, 0, "F", 18, None, 2,
         "拜耳医药保健有限公司"),
    Drug("盐酸坦索罗辛缓释胶囊", "0.2mg×10粒", "G04CA", False, "acute", 10, 36.50, 0, "M", 18,
         None, 3, "安斯泰来制药(中国)有限公司"),
    Drug("非那雄胺片", "5mg×10片", "G04CB", False, "acute", 10, 43.80, 0, "M", 18, None, 2,
         "杭州默沙东制药有限公司"),
    Drug("氯雷他定片", "10mg×6片", "R06AX", False, "acute", 6, 18.50, 0, "", 2, None, 6,
         "拜耳医药保健有限公司"),
    Drug("蒲地蓝消炎口服液", "10ml×10支", "B01AA", True, "acute", 10, 32.00, 0, "", None, None,
         5, "济川药业集团有限公司"),
    Drug("连花清瘟胶囊", "0.35g×24粒", "A01BA", True, "acute", 24, 14.80, 12, "", None, None, 7,
         "石家庄以岭药业股份有限公司"),
    Drug("左氧氟沙星片", "0.5g×6片", "J01MA", False, "acute", 6, 22.40, 1, "", 18, None, 5,
         "第一三共制药(北京)有限公司"),
    Drug("孟鲁司特钠咀嚼片", "4mg×5片", "R03DC", False, "acute", 5, 29.70, 0, "", 2, 14, 3,
         "杭州默沙东制药有限公司"),
    Drug("甲钴胺片", "0.5mg×20片", "B03BA", False, "acute", 20, 22.90, 10, "", None, None, 4,
         "卫材(中国)药业有限公司"),
    Drug("维生素AD滴剂", "1500IU:500IU×30粒", "A11CB", False, "acute", 30, 38.00, 0, "",
         None, 3, 3, "山东达因海洋生物制药股份有限公司"),
)

SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏"
    "魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵"
)
GIVEN_MALE = "伟强磊军勇杰涛明超刚平辉鹏华飞鑫波斌宇浩凯健俊帆帅旭宁龙林欣建国志文博锋海"
GIVEN_FEMALE = "芳娜敏静丽艳娟霞秀燕玲桂丹萍红玉兰琳雪梅婷慧莉倩颖洁晶佳怡欣悦淑珍凤英"

CHAINS = ("大参林", "老百姓大药房", "益丰大药房", "海王星辰", "国大药房", "一心堂", "采芝林",
          "健民药业")
STREETS = ("人民路", "中山路", "解放路", "建设路", "新华路", "东风路", "滨江路", "文化路",
           "环城路", "兴业路", "和平路", "幸福路", "金沙路", "康乐路")
# streets and neighbourhoods by city (first 4 digits of admdvs), for shop names
CITY_STREETS: dict[str, tuple[str, ...]] = {
    "4401": ("天河路", "五山路", "石牌", "员村", "客村", "江南西", "同德", "新市", "龙洞",
             "市桥", "大石", "沙湾", "北京路", "东山口", "芳村", "西华路"),
    "4403": ("莲花路", "华强北", "科技园", "西乡", "布吉", "民治", "东门", "车公庙", "蛇口",
             "坂田"),
    "4406": ("祖庙", "桂城", "大良", "容桂", "季华路", "乐从"),
    "4419": ("南城", "东城", "长安", "虎门", "常平", "塘厦"),
    "4420": ("石岐", "小榄", "东区"),
    "4404": ("拱北", "香洲", "吉大"),
    "4501": ("朝阳路", "民族大道", "琅东"),
    "4301": ("麓山路", "五一大道", "河西"),
    "1509": ("恩和路", "新华街"),
}
SHOP_WORDS = ("康宁", "百姓", "仁和", "济生", "永康", "德仁", "安康", "惠民", "福寿", "健民",
              "万春", "同仁", "寿康", "益生", "瑞康", "宝芝林")
SUPPLIERS = ("国药控股广州有限公司", "广州医药股份有限公司", "华润广东医药有限公司",
             "九州通医药集团股份有限公司", "国药控股深圳有限公司", "广东大参林医药物流有限公司",
             "柳州医药股份有限公司", "老百姓医药集团有限公司")
SHADY_SUPPLIERS = ("广州市白云区某医药贸易部", "个人", "东莞某药材经营部")
